# The Airflow 3 image for docker-compose.yml (development): the official image plus meterline's
# dependencies, exactly as uv.lock pins them (apache-airflow included, the image's own version).
# The code itself (dags/, dbt_project/, the stage packages) is mounted at /opt/meterline and
# found through PYTHONPATH, so an edit needs no rebuild; a change of uv.lock does.
ARG AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11
FROM ${AIRFLOW_IMAGE}

USER root
# headless Chromium prints the finance reports' PDF (exports/reports/pdf.py)
RUN apt-get update \
 && apt-get install -y --no-install-recommends chromium \
 && rm -rf /var/lib/apt/lists/*
# the named volume mounted here (sample world, meterline state, exports) starts owned by airflow
RUN mkdir -p /opt/meterline-data && chown airflow:root /opt/meterline-data
USER airflow

COPY --chown=airflow:root pyproject.toml uv.lock /tmp/meterline-lock/
RUN pip install --no-cache-dir "uv==0.13.8" \
 && uv export --project /tmp/meterline-lock --frozen --no-dev --no-emit-project --no-hashes \
      --output-file /tmp/meterline-lock/requirements.txt \
 && pip install --no-cache-dir -r /tmp/meterline-lock/requirements.txt
