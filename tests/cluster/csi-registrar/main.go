// csi-registrar registers a CSI driver (the SPIFFE CSI driver) with the kubelet: the job of
// Kubernetes' node-driver-registrar, which the Go module proxy does not serve, done here for
// the one-node test cluster. It takes node-driver-registrar's flag names, so SPIRE's
// manifest needs only another image.
//
// It serves the kubelet's plugin registration API (k8s.io/kubelet pluginregistration v1)
// on a socket in the kubelet's plugins_registry directory. The kubelet finds the socket,
// asks what the plugin is (a CSI plugin, its name, where its CSI socket is on the node),
// calls the driver's NodeGetInfo itself and reports the outcome. A refusal is fatal: the
// process exits so that the kubelet restarts the container and registration is tried again.
//
// (It is Go, not Rust like the rest of the project, because the kubelet dials the socket
// with the socket's path as the HTTP/2 :authority, which the Rust HTTP/2 server refuses
// as malformed.)
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	registration "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

type registrar struct {
	registration.UnimplementedRegistrationServer
	info     registration.PluginInfo
	outcomes chan error
}

func (r *registrar) GetInfo(context.Context, *registration.InfoRequest) (*registration.PluginInfo, error) {
	info := r.info
	return &info, nil
}

func (r *registrar) NotifyRegistrationStatus(_ context.Context, status *registration.RegistrationStatus) (*registration.RegistrationStatusResponse, error) {
	var outcome error
	if !status.PluginRegistered {
		outcome = fmt.Errorf("the kubelet refused to register %s: %s", r.info.Name, status.Error)
	}
	select {
	case r.outcomes <- outcome:
	default: // a repeat while the last one is unread
	}
	return &registration.RegistrationStatusResponse{}, nil
}

func main() {
	csiAddress := flag.String("csi-address", "/spiffe-csi/csi.sock", "the driver's CSI socket as mounted in this container; registration waits until it exists")
	kubeletPath := flag.String("kubelet-registration-path", "/var/lib/kubelet/plugins/csi.spiffe.io/csi.sock", "the driver's CSI socket as a path on the node (what the kubelet dials)")
	registryDir := flag.String("plugin-registration-path", "/registration", "the kubelet's plugins_registry directory as mounted in this container")
	driverName := flag.String("driver-name", "csi.spiffe.io", "the driver's name, as in its CSIDriver object")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("csi-registrar: ")

	// Registering before the driver listens would make the kubelet's NodeGetInfo fail.
	for {
		if _, err := os.Stat(*csiAddress); err == nil {
			break
		}
		log.Printf("waiting for the driver's socket %s", *csiAddress)
		time.Sleep(time.Second)
	}
	socket := filepath.Join(*registryDir, *driverName+"-reg.sock")
	if err := os.Remove(socket); err != nil && !os.IsNotExist(err) {
		log.Fatalf("removing the stale socket %s: %v", socket, err)
	}
	listener, err := net.Listen("unix", socket)
	if err != nil {
		log.Fatalf("listening on %s (is the kubelet's plugins_registry mounted there?): %v", socket, err)
	}
	r := &registrar{
		info: registration.PluginInfo{
			Type:              registration.CSIPlugin,
			Name:              *driverName,
			Endpoint:          *kubeletPath,
			SupportedVersions: []string{"1.0.0"},
		},
		outcomes: make(chan error, 1),
	}
	server := grpc.NewServer()
	registration.RegisterRegistrationServer(server, r)
	served := make(chan error, 1)
	go func() { served <- server.Serve(listener) }()
	log.Printf("serving registration of %s (CSI socket %s) on %s", *driverName, *kubeletPath, socket)
	for {
		select {
		case err := <-served:
			log.Fatalf("serving the registration API: %v", err)
		case outcome := <-r.outcomes:
			if outcome != nil {
				log.Fatal(outcome)
			}
			log.Printf("the kubelet registered %s", *driverName)
		}
	}
}
