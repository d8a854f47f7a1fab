"""``python -m scim_reconciler.simulator IDP --directory FILE [options]``."""

import typer

from scim_reconciler.cli.simulate import simulate

if __name__ == "__main__":
    typer.run(simulate)
