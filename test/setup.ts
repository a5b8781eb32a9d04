// Before anything imports libp2p: Promise.withResolvers for Node 20.
import '../src/core/shim.js'
