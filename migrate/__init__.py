"""Move a running deployment of the Terraform module onto this product without recreating it.

``python build.py migrate --tfstate FILE`` reads the JSON of ``terraform state pull`` and writes,
for the state's region: the product's parameters, a template and ``--resources-to-import`` list
for a CloudFormation IMPORT change set, the product template (with the module's names), and a
runbook with the commands in order, their rollbacks and what happens to every Terraform address.

Modules, one concern each, pure functions over plain data (nothing here calls AWS):
``tfstate`` reads and validates the state, ``facts`` derives the deployment's settings,
``product`` renders the product with the module's names, ``importing`` builds the import
template, ``fates`` says what happens to every address, ``runbook`` writes the commands.
"""


class MigrationError(Exception):
    """The state cannot be migrated: reported in one line, exit code 2."""
