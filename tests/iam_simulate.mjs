// Evaluates IAM requests with @cloud-copilot/iam-simulate for the Python tests.
// stdin: JSON list of cases {id, action, resource, principal, accountId?, context?,
//   identityPolicies: [policy...], boundaries?: [policy...], resourcePolicy?: policy}
// stdout: JSON object {id: {result, errors?}}: result is Allowed, ImplicitlyDenied,
//   ExplicitlyDenied or Error (the request or a policy failed the simulator's validation).
import { runSimulation } from '@cloud-copilot/iam-simulate'

const chunks = []
for await (const chunk of process.stdin) chunks.push(chunk)
const cases = JSON.parse(Buffer.concat(chunks).toString('utf8'))

const results = {}
for (const c of cases) {
  const simulation = {
    request: {
      action: c.action,
      principal: c.principal,
      resource: { resource: c.resource, accountId: c.accountId ?? '123456789012' },
      contextVariables: c.context ?? {}
    },
    identityPolicies: (c.identityPolicies ?? []).map((policy, i) => ({ name: `p${i}`, policy })),
    permissionBoundaryPolicies: c.boundaries?.length
      ? c.boundaries.map((policy, i) => ({ name: `b${i}`, policy }))
      : undefined,
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy: c.resourcePolicy
  }
  const response = await runSimulation(simulation, {})
  results[c.id] =
    response.resultType === 'error'
      ? { result: 'Error', errors: response.errors }
      : { result: response.overallResult }
}
process.stdout.write(JSON.stringify(results))
