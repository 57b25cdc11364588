module reachclient

go 1.19
