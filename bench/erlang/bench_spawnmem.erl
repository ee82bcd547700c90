%% bench_spawnmem — main spawns K idle processes. The spawn loop is timed
%% (spawns/s). Then, untimed, main pings every process (1000 at a time) and
%% waits for every pong, and reads resident memory again: growth over K is bytes per actor.
-module(bench_spawnmem).
-export([main/1]).

main(Args) ->
    K = bench_common:arg(Args, 1, 200000),
    Rss0 = bench_common:rss_bytes(),
    T0 = bench_common:now_s(),
    Pids = spawn_n(K, []),
    Secs = bench_common:now_s() - T0,
    ping_waves(Pids, self()),
    Rss1 = bench_common:rss_bytes(),
    bench_common:result("spawnmem", K, Secs, "bytes_per_actor", (Rss1 - Rss0) / K,
                        "metric2=spawns_per_s value2=" ++
                            float_to_list(K / Secs, [{decimals, 1}])).

%% Pings in waves of 1000, so the messages in flight stay few and do not
%% count as per-actor memory.
ping_waves([], _Main) -> ok;
ping_waves(Pids, Main) ->
    {Wave, Rest} = lists:split(min(1000, length(Pids)), Pids),
    [Pid ! {ping, Main} || Pid <- Wave],
    [receive pong -> ok after 600000 -> bench_common:fail("spawnmem: timed out", []) end
     || _ <- Wave],
    ping_waves(Rest, Main).

spawn_n(0, Acc) -> Acc;
spawn_n(K, Acc) -> spawn_n(K - 1, [spawn(fun idle/0) | Acc]).

idle() ->
    receive
        {ping, From} -> From ! pong, idle()
    end.
