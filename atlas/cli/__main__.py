from atlas.cli.main import run

run()
