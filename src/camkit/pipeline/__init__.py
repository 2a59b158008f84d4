"""camkit.pipeline"""
