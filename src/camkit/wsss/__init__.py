"""camkit.wsss"""
