-- The DataScript's logic for HAProxy: 403 on /secure/.
core.register_action("secure", {"http-req"}, function(txn)
    if txn.sf:path() == "/secure/" then
        txn:done(txn:reply({status = 403, body = ""}))
    end
end)
