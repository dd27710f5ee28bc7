// fast-gateway (Node) as a plain reverse proxy: the peer Tiergate is compared with.
// Usage: node fast_gateway.js PORT UPSTREAM_URL PREFIX
'use strict'
const gateway = require('fast-gateway')

const [port, target, prefix] = process.argv.slice(2)
const server = gateway({ routes: [{ prefix, target }] })
server.start(Number(port)).then(() => console.log(`fast-gateway listening on ${port}`))
