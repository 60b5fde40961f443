"""rclone config templates, one per provider; shipped in the wheel as rclone_jupyter.rclone_conf_templates."""
