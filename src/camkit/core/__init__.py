"""camkit.core"""
