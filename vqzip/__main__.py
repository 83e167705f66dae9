from vqzip.cli import run

run()
