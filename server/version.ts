// Versions detcd reports. Clients judge features by the etcd version, so the server and
// cluster versions are those of the etcd release whose API detcd implements.
export const DETCD_VERSION = "0.1.0";
export const ETCD_SERVER_VERSION = "3.4.23";
export const ETCD_CLUSTER_VERSION = "3.4.0";
export const ETCD_API_VERSION = "3.4";
