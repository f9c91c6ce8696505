"""A stand-in for the platform's CCX app (``lms.djangoapps.ccx``): its model, under its app label."""
