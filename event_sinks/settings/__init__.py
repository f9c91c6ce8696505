"""Open edX plugin settings (``plugin_app["settings_config"]``)."""
