from rclone_jupyter.cli import main

main()
