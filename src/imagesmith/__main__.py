from imagesmith.cli.main import run

run()
