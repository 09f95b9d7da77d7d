"""meterline package."""
