// Test oracle: encrypt or decrypt stdin to stdout with the official AWS
// Encryption SDK for JavaScript and a KMS keyring. Endpoint, region and
// credentials come from the standard AWS environment (the kmsd under test).
//
//   node esdk.js encrypt KEY_ARN SUITE_HEX FRAME_LENGTH CONTEXT_JSON
//   node esdk.js decrypt KEY_ARN            (prints the context on stderr)
'use strict'
const {
  KmsKeyringNode, buildClient, CommitmentPolicy, getClient, KMS,
} = require('@aws-crypto/client-node')

async function readStdin () {
  const chunks = []
  for await (const c of process.stdin) chunks.push(c)
  return Buffer.concat(chunks)
}

async function main () {
  const [op, keyArn, suite, frame, ctx] = process.argv.slice(2)
  const endpoint = process.env.AWS_ENDPOINT_URL_KMS
  const clientProvider = getClient(KMS, endpoint ? { endpoint } : {})
  const keyring = new KmsKeyringNode({ clientProvider, generatorKeyId: keyArn, keyIds: [] })
  const policy = process.env.ESDK_POLICY === 'forbid'
    ? CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT
    : CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT
  const { encrypt, decrypt } = buildClient(policy)
  const input = await readStdin()
  if (op === 'encrypt') {
    const { result } = await encrypt(keyring, input, {
      encryptionContext: JSON.parse(ctx || '{}'),
      suiteId: parseInt(suite, 16),
      frameLength: parseInt(frame, 10),
      plaintextLength: input.length
    })
    process.stdout.write(result)
  } else if (op === 'decrypt') {
    const { plaintext, messageHeader } = await decrypt(keyring, input)
    process.stderr.write(JSON.stringify(messageHeader.encryptionContext) + '\n')
    process.stdout.write(plaintext)
  } else {
    throw new Error('usage: esdk.js encrypt|decrypt ...')
  }
}

main().catch(err => {
  process.stderr.write(`esdk-js: ${err && err.stack ? err.stack : err}\n`)
  process.exit(1)
})
