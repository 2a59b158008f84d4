"""camkit.apps/studies"""
