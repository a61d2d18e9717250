// Preloaded (node --import) into the cache-tests origin server so that it
// listens on loopback only: the suite calls server.listen(port), which would
// otherwise bind every interface of the machine. The suite itself stays
// unmodified.
import net from 'node:net'

const listen = net.Server.prototype.listen
net.Server.prototype.listen = function (...args) {
  if (args.length >= 1 && (typeof args[0] === 'number' || typeof args[0] === 'string') &&
      (args.length === 1 || typeof args[1] === 'function')) {
    args.splice(1, 0, process.env.CACHETESTS_HOST || '127.0.0.1')
  }
  return listen.apply(this, args)
}
