// Package batch holds the gathering step of group commit, written once
// for the CP batcher, the AP writer and receiver, and the fan-out worker.
package batch

// Drain appends to b what is already queued on ch, without waiting, until
// b holds max items or ch is empty or closed, and returns b. Whatever
// arrived while the previous batch was being written thus goes into the
// next one: under load batches grow, with no added latency when idle.
func Drain[T any](ch <-chan T, b []T, max int) []T {
	for len(b) < max {
		select {
		case v, ok := <-ch:
			if !ok {
				return b
			}
			b = append(b, v)
		default:
			return b
		}
	}
	return b
}
