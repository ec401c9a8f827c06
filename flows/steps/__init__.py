"""Pipeline steps: plain typed functions, one module per stage (settings + paths in, artifacts +
metrics out). No Prefect or MLflow here: the flows and the CLI wrap them."""
