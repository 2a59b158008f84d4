"""camkit.apps"""
