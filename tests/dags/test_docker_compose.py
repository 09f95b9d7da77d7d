"""docker-compose.yml is valid for docker-compose (v1, no engine needed) and wires what the DAGs
need: the services, the mounted code, the pool the DAGs use, configuration that loads."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from pathlib import Path

import yaml

from meterline.config import load_config

# one xdist group with the nightly end-to-end run; the month close run goes beside it. (With
# pytest 9.2 xdist ignores groups, pytest-dev/pytest-xdist#1386: the end-to-end files are
# named to be collected first, so the two long runs start on different workers either way.)
ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_SERVICES = {"airflow-init", "airflow-api-server", "airflow-scheduler", "airflow-dag-processor",
                    "airflow-triggerer"}


def test_compose_file_validates_and_wires_the_dags(docker_compose: str) -> None:
    res = subprocess.run([docker_compose, "-f", str(ROOT / "docker-compose.yml"), "config"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    services = yaml.safe_load(res.stdout)["services"]
    assert set(services) == {"postgres", "localstripe", *AIRFLOW_SERVICES}

    pool = re.search(r'^WAREHOUSE_POOL = "(\w+)"', (ROOT / "dags" / "meterline_airflow.py").read_text(), re.M)
    assert pool is not None
    for name in AIRFLOW_SERVICES:
        svc = services[name]
        env = svc["environment"]
        assert svc["build"]["dockerfile"] == "deploy/airflow.Dockerfile"
        assert (ROOT / svc["build"]["dockerfile"]).is_file()
        mounts = {m.split(":")[1]: m.split(":")[0] for m in svc["volumes"]}  # v1 prints src:dst:mode
        assert Path(mounts["/opt/meterline"]).resolve() == ROOT  # dags/, dbt_project/ and the packages
        assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/meterline/dags"
        assert env["PYTHONPATH"] == "/opt/meterline"
        assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
        assert env["METERLINE_CONFIG"] == "/opt/meterline/deploy/meterline.toml"
        assert "METERLINE_WAREHOUSE" not in env and "METERLINE_STRIPE_API_KEY" not in env  # connections
        assert env["AIRFLOW_CONN_METERLINE_WAREHOUSE"].startswith("postgresql://meterline:")
        if name != "airflow-init":
            assert svc["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    init = " ".join(services["airflow-init"]["command"])
    assert "airflow db migrate" in init and f"airflow pools set {pool.group(1)} 1 " in init
    assert "meterline.cli sample" in init
    # the DAGs schedule the sample world's nights: METERLINE_END_DATE is the world's last night
    # (the month close derives its own last month from it: test_dag_integrity.py)
    sample = re.search(r"meterline\.cli sample .*--start (\S+) --days (\d+)", init)
    assert sample is not None, init
    first = dt.date.fromisoformat(sample.group(1))
    last = first + dt.timedelta(days=int(sample.group(2)) - 1)
    env = services["airflow-scheduler"]["environment"]
    assert env["METERLINE_START_DATE"] == first.isoformat() and env["METERLINE_END_DATE"] == last.isoformat()
    assert services["localstripe"]["ports"] == [{"published": 8420, "target": 8420}]
    init_sql = next(v for v in services["postgres"]["volumes"] if "docker-entrypoint-initdb.d" in str(v))
    assert (ROOT / "deploy" / "postgres-init.sh").is_file() and "postgres-init.sh" in str(init_sql)

    # the configuration the containers use loads (keys known, no secret in the file)
    cfg = load_config(ROOT / "deploy" / "meterline.toml",
                      env={"METERLINE_WAREHOUSE": "postgresql://meterline@postgres:5432/meterline"})
    assert cfg.get("sources", "stripe_api_base") == "http://localstripe:8420"
    assert str(cfg.state_dir).startswith("/opt/meterline-data/")
