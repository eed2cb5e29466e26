/* Static helper run inside test containers: makes one syscall and prints its errno, so a test
 * can tell a seccomp refusal from success. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: syscall_probe personality|ptrace|getpid\n");
    return 2;
  }
  long rc = -1;
  errno = 0;
  if (strcmp(argv[1], "personality") == 0) {
    /* ADDR_NO_RANDOMIZE: not among the personalities the default profile allows. */
    rc = syscall(SYS_personality, 0x0040000);
  } else if (strcmp(argv[1], "ptrace") == 0) {
    rc = syscall(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0);
  } else if (strcmp(argv[1], "getpid") == 0) {
    rc = syscall(SYS_getpid);
  }
  printf("%s rc=%ld errno=%d\n", argv[1], rc < 0 ? -1L : 0L, rc < 0 ? errno : 0);
  return 0;
}
