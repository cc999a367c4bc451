"""Meta-analysis models: exact (numerical-integration) posteriors and frequentist estimators."""
