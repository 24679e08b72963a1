// Evaluate requests against resolved IAM policies with @cloud-copilot/iam-simulate, for
// tests/test_launch_role.py (the launch role's own harness; tests/iam_simulate.mjs is the
// product template's: they can merge).
// stdin:  {"cases": [{"name", "principal", "action", "resource", "accountId", "context",
//          "identityPolicies": [doc], "boundaries": [doc], "resourcePolicy": doc?}]}
// stdout: {"<name>": "Allowed" | "ExplicitlyDenied" | "ImplicitlyDenied" | "error: ..."}
import { readFileSync } from 'node:fs'
import { runSimulation } from '@cloud-copilot/iam-simulate'

const named = (prefix, docs) => docs.map((policy, i) => ({ name: `${prefix}${i}`, policy }))

async function decide(c) {
  const simulation = {
    request: {
      principal: c.principal,
      action: c.action,
      resource: { resource: c.resource, accountId: c.accountId },
      contextVariables: c.context ?? {}
    },
    identityPolicies: named('identity', c.identityPolicies),
    permissionBoundaryPolicies: c.boundaries?.length ? named('boundary', c.boundaries) : undefined,
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy: c.resourcePolicy
  }
  const response = await runSimulation(simulation, {})
  if (response.resultType === 'error') return `error: ${JSON.stringify(response.errors)}`
  return response.overallResult
}

const { cases } = JSON.parse(readFileSync(0, 'utf8'))
const results = {}
for (const c of cases) results[c.name] = await decide(c)
process.stdout.write(JSON.stringify(results))
