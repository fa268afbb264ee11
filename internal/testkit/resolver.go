package testkit

import (
	"context"
	"net"
)

// HostResolver resolves the host names it maps, and answers every other
// name "no such host" (a *net.DNSError) at once: tests that fetch through
// it send no DNS query and never wait on one.
type HostResolver map[string][]string

// LookupHost returns host's addresses or a not-found *net.DNSError.
func (r HostResolver) LookupHost(ctx context.Context, host string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if addrs, ok := r[host]; ok {
		return addrs, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}
