import json,sys
d=json.load(open(sys.argv[1]))
pub=d['publish']; dl=d['delivery']; s=d.get('server') or {}
tool=sum(ph['tool_cpu_s'] for ph in d['phases'])
print("ok=%s deliveries/s=%.0f window=%.2fs publish/s=%.0f pub_p50=%sms lat_p50=%sms server_cpu=%s tool_cpu=%.2f" % (
 d['ok'], dl['per_second'], dl['window_s'], pub['per_second'], pub['request_latency']['p50_ms'], dl['latency']['p50_ms'], s.get('cpu_s'), tool))
