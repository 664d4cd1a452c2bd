"""Explanations by generation: a beat VAE (``vae``) and query-based latent space traversal (``traverse``)."""
