"""Networks, dynamics ensembles and the model environment."""
