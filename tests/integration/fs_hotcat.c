/*
 * fs_hotcat.c: open+read+close of one file in a loop, as `cat` does it (open, read until EOF,
 * close); prints the best of R rounds of N iterations in microseconds per iteration. A
 * measurement helper (README, "Caching"), not a test:
 *
 *   cc -O2 -o /tmp/fs_hotcat tests/integration/fs_hotcat.c
 *   /tmp/fs_hotcat /coord/f 20000 7; /tmp/fs_hotcat /dev/shm/f 20000 7
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(int argc,char**argv){
	const char*p=argv[1];int n=argc>2?atoi(argv[2]):20000;int r=argc>3?atoi(argv[3]):7;
	char buf[131072];double best=1e18;
	for(int k=0;k<r;k++){double t0=now();
		for(int i=0;i<n;i++){int fd=open(p,O_RDONLY);if(fd<0){perror("open");return 1;}
			ssize_t m=read(fd,buf,sizeof buf);if(m<0){perror("read");return 1;}
			if(m>0) m=read(fd,buf,sizeof buf); /* cat reads until EOF */
			close(fd);}
		double dt=(now()-t0)/n;if(dt<best)best=dt;}
	printf("%s: %.2f us per open+read+close (best of %d x %d)\n",p,best/1000,r,n);return 0;}
