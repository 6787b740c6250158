# Settings for the Vagrant cluster; edit here, the Vagrantfile reads this file.

# Number of VMs: core-01 … core-NN.
$num_instances = 3

# VM name prefix ("core" gives core-01, core-02, …).
$instance_name_prefix = "core"

# Flatcar channel the box comes from: stable, beta or alpha.
$update_channel = "stable"

# Per-VM resources (MiB, vCPUs).
$vm_memory = 2048
$vm_cpus = 1

# Underlay: core-01 is 172.17.8.101, core-02 .102, … — outside the overlay network below.
$ip_prefix = "172.17.8."

# Overlay network stored in etcd at /coreos.com/network/config (each host leases a /24 of it).
$overlay_network = "10.5.0.0/16"

# Versions fetched inside the VMs.
$etcd_version = "v3.5.17"
$fleet_version = "v1.0.0"
