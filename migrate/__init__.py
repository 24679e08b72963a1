"""Move a running deployment onto this product without recreating it: one of the Terraform
module (``--tfstate``), or a stack made from an earlier per-region template (``--from-stack``).

``python build.py migrate --tfstate FILE`` reads the JSON of ``terraform state pull`` and writes,
for the state's region: the product's parameters, a template and ``--resources-to-import`` list
for a CloudFormation IMPORT change set, the product template (with the module's names), and a
runbook with the commands in order, their rollbacks and what happens to every Terraform address.

Modules, one concern each, pure functions over plain data (nothing here calls AWS):
``tfstate`` reads and validates the state, ``facts`` derives the deployment's settings,
``product`` renders the product with the module's names, ``importing`` builds the import
template, ``fates`` says what happens to every address, ``runbook`` writes the commands.

``python build.py migrate --from-stack DIR`` reads a per-region stack's template, parameters,
resources and the account's zones (written by the AWS CLI) and writes the four steps that give
its zone resources the one template's logical ids by resource import: ``stack_inputs`` reads
and checks the files, ``stack_zones`` decides each zone's letter and CIDR, ``stack_steps``
builds the step templates and parameters, ``stack_runbook`` the commands, ``from_stack`` puts
them together; ``cli`` is the ``migrate`` command of build.py.
"""


class MigrationError(Exception):
    """The state cannot be migrated: reported in one line, exit code 2."""
