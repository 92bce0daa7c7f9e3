// Command probe is one static binary for the test cluster's images:
//
//	probe pause          the pod sandbox: waits for SIGTERM or SIGINT, reaps orphans
//	probe serve PORT     answers every HTTP request with the pod's hostname
//	probe get URL [SECS] prints the body of an HTTP GET; exit 1 on failure; with SECS,
//	                     tries again until one succeeds or SECS seconds have passed
//	probe lookup NAME    prints the addresses NAME resolves to; exit 1 if none
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: probe pause | serve PORT | get URL [SECONDS] | lookup NAME")
	}
	switch command, args := os.Args[1], os.Args[2:]; {
	case command == "pause":
		pause()
	case command == "serve" && len(args) == 1:
		serve(args[0])
	case command == "get" && len(args) == 1:
		get(args[0], 0)
	case command == "get" && len(args) == 2:
		seconds, err := strconv.Atoi(args[1])
		if err != nil {
			fail("get: %v", err)
		}
		get(args[0], time.Duration(seconds)*time.Second)
	case command == "lookup" && len(args) == 1:
		lookup(args[0])
	default:
		fail("unknown command or arguments: %q", os.Args[1:])
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

func pause() {
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			return
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}

func serve(port string) {
	name, _ := os.Hostname()
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, name)
	})
	server := &http.Server{Addr: ":" + port, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		signals := make(chan os.Signal, 1)
		signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
		<-signals
		_ = server.Shutdown(context.Background())
	}()
	if err := server.ListenAndServe(); err != http.ErrServerClosed {
		fail("serve: %v", err)
	}
}

func get(url string, within time.Duration) {
	deadline := time.Now().Add(within)
	for {
		body, err := getOnce(url)
		if err == nil {
			os.Stdout.Write(body)
			return
		}
		if time.Now().After(deadline) {
			fail("get: %v", err)
		}
		fmt.Fprintf(os.Stderr, "get: %v; again\n", err)
		time.Sleep(200 * time.Millisecond)
	}
}

func getOnce(url string) ([]byte, error) {
	client := &http.Client{Timeout: 3 * time.Second}
	response, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer response.Body.Close()
	body, err := io.ReadAll(response.Body)
	if err == nil && response.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", response.StatusCode)
	}
	return body, err
}

func lookup(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	addresses, err := net.DefaultResolver.LookupHost(ctx, name)
	if err != nil || len(addresses) == 0 {
		fail("lookup: %v", err)
	}
	for _, address := range addresses {
		fmt.Println(address)
	}
}
