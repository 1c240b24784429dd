// Package kafka is the Kafka adapter of the bus, for the distributed mode
// in which every service (users, events, bookings, payments) runs in its
// own process with its own event store and talks to the others only
// through Kafka.
//
// The pieces, and the guarantee each one carries:
//
//   - Relay copies every record of one service's store to Kafka, to the
//     service topic "<prefix>.<service>" (keyed by aggregate id, so a
//     stream stays in order) and to the single-partition firehose
//     "<prefix>.log" (the total order the read models are built from), in
//     one transaction per batch together with its own checkpoint. Relaying
//     is therefore exactly once: a crash anywhere leaves either the whole
//     batch and its checkpoint or neither.
//   - LogReader serves the firehose as a projections.EventLog, read
//     committed, so records of aborted transactions are never seen.
//   - Sender delivers commands to "<prefix>.<service>.commands" and returns
//     once the broker has them; Runner.RunCommands dispatches them to a
//     commands.Router on the receiving side.
//   - Runner feeds process managers (inproc.Reactor) and command handlers
//     from consumer groups: keyed workers (in order per key, concurrent
//     across keys even inside one partition), offsets committed only past
//     finished messages, bounded retries, then a dead-letter topic, so one
//     bad message never blocks a partition.
//
// Messages follow the CloudEvents Kafka protocol binding in binary mode
// (see EncodeRecord) and carry W3C trace context as plain headers.
//
// Delivery to handlers is at least once; the handlers of this system are
// idempotent (ids derived from the message, expected revisions), and the
// runner also skips messages it has already handled, so redelivery costs
// little and changes nothing.
package kafka
