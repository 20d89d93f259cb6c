"""Training and the model lifecycle: loading data from the store, fitting and evaluating under
the DESIGN.md protocol, automatic model choice, artifacts, the version registry, batch
recommendations and scheduled retraining.
"""
