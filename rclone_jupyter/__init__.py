"""rclone-jupyter: JupyterLab whose data folder lives in a bucket, kept in sync by rclone."""

__version__ = "0.1.0"
