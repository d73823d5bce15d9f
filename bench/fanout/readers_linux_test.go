package fanout

// readers are the clients' readers this platform has (epoll_linux.go).
var readers = []string{"epoll", "gorilla"}
