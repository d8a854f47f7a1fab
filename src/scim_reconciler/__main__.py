from scim_reconciler.cli.main import app

app(prog_name="scim-reconciler")
