"""Plugins bundled with synthtune. Each is registered through the ``synthtune`` entry-point
group exactly like a third-party plugin; the core imports none of them by name."""
