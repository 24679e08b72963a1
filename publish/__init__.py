"""Publish the rendered templates as a versioned AWS Service Catalog product, shared across an
AWS Organization, with the launch role deployed to member accounts by a StackSet.

build.py calls ``publish.add_arguments(subparser)`` and ``publish.main(args, settings, dist)``.
The flow, one module each:

* ``config``: settings, the template to publish and its version (local inputs only);
* ``aws``: clients, error classes, find-one-by-exact-name, get-or-none;
* ``state``: read a region's bucket and catalog into plain data (read calls only);
* ``decide`` / ``versions`` / ``organization``: pure decisions, state -> list of actions
  (``versions`` refuses a new version that the upgrade preview, templates/preview.py, says
  would replace or remove a stateful resource of stacks on the newest published version);
* ``actions``: the actions as data, printable as the exact API calls (``--dry-run``);
* ``apply``: run the actions, fill ids from earlier results, retry and wait;
* ``run`` / ``cli``: one scope end to end, and the command with its report.
"""

from .aws import Clients
from .cli import add_arguments, main

__all__ = ["Clients", "add_arguments", "main"]
