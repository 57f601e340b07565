#include "ffdp/volume.h"
#include "ffdp/register.h"
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <time.h>
#include <omp.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+1e-9*t.tv_nsec;}
int main(int argc,char**argv){
  int64_t d[3]={182,218,182}; ffdp_volume *v; ffdp_error err;
  ffdp_mat4 w=ffdp_mat4_identity();
  if(ffdp_volume_create(d,3,w,&v,&err)) return 1;
  float *p=ffdp_volume_data(v); int64_t n=d[0]*d[1]*d[2];
  srand(1);
  for(int64_t i=0;i<3*n;i++) p[i]=2.0f*sinf(0.01f*(float)(i%1000))+0.001f*(rand()%1000);
  for(int r=0;r<3;r++){ double t0=now();
  if(ffdp_warp_save_ants(v,w,argv[1],&err)){fprintf(stderr,"%s\n",err.msg);return 1;}
  printf("write %.1f ms (%d threads)\n",1e3*(now()-t0),omp_get_max_threads());}
  return 0;}
