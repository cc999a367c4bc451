"""nutrimeta: Bayesian evidence synthesis of micronutrient supplementation and hormonal function."""

__version__ = "0.1.0"
