package oauth

// MaxEarlyWakes is how many early returns of a StoreNotifier's WaitUnlock
// one refresh heeds before it polls.
const MaxEarlyWakes = maxEarlyWakes
