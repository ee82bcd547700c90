/*
 * proc_test.h — what the process-actor tests share to look at the process
 * tree and at what a runtime leaves behind: processes, descriptors, files.
 */
#ifndef TROUPE_PROC_TEST_H
#define TROUPE_PROC_TEST_H

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* True once pid no longer exists (reaped). */
static inline bool pid_gone(int pid) { return kill(pid, 0) != 0 && errno == ESRCH; }

/* Entries in dir besides "." and ".."; 0 when dir does not exist. */
static inline int count_entries(const char *dir)
{
    int n = 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* Open descriptors of this process (the count includes the one reading). */
static inline int count_fds(void) { return count_entries("/proc/self/fd"); }

/* The parent pid and state letter of pid from /proc; false if it is gone. */
static inline bool proc_stat(int pid, int *ppid, char *state)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    return p != NULL && sscanf(p + 1, " %c %d", state, ppid) == 2;
}

#endif
