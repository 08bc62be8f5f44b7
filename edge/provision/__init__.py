"""Broker provisioning: site credentials, mosquitto password file, ACL and configuration.

See provisioning/broker/README.md. ``add_parsers`` plugs ``madoguchi provision`` into the CLI.
"""

from edge.provision.cli import add_parsers

__all__ = ["add_parsers"]
