// Case 23: a cgo program whose goroutines allocate through C's malloc while it sends itself the
// dump signal. Go's runtime aborts ("non-Go code set up signal handler without SA_ONSTACK flag")
// when a handler installed by C code runs on a Go thread without SA_ONSTACK.
package main

/*
#include <stdlib.h>
static void churn(int n) {
	for (int i = 0; i < n; ++i) free(malloc(100 + i % 5000));
}
*/
import "C"

import (
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
)

func main() {
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				C.churn(1000)
				_ = make([]byte, 4096)
			}
		}()
	}
	if os.Getenv("LD_PRELOAD") != "" {
		for i := 0; i < 20; i++ {
			syscall.Kill(os.Getpid(), syscall.SIGUSR2)
			time.Sleep(5 * time.Millisecond)
		}
	}
	wg.Wait()
	fmt.Println("goroutines done")
}
