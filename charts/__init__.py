"""The cdk8s app: the shop's deployment definitions (what gitopskit synthesizes)."""
