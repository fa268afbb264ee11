package agent

// ObserveUpstream makes a's proxy tell f every host:port an attempt
// connects to, so a test can check that no other host is ever contacted.
// Call it before serving.
func ObserveUpstream(a *Agent, f func(hostPort string)) { a.proxy.onConn = f }
