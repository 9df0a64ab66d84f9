package anoncreds

import "runtime"

// parallelism is how many tau computations run at once.
func parallelism() int {
	n := runtime.GOMAXPROCS(0)
	if n < 1 {
		n = 1
	}
	return n
}
